package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/gofrs/flock"

	"github.com/latchdev/latch"
)

// File is a Sink that keeps a file holding the access token and a
// newline, or what Render makes of the token.
//
// By default each token replaces the file atomically (a new file renamed
// over it), so a reader opens the old token or the new one, never a part,
// and never an empty file. A file bind-mounted into a container is not
// reached by a rename (the mount holds the old inode); InPlace rewrites
// it where it is instead: one write at offset 0 and a truncate to the new
// length, under an exclusive flock(2) of the file. A reader that takes a
// shared lock (`flock -s FILE cat FILE`) sees a whole token; one that
// does not may, during that write, see parts of two, but never an empty
// file while a token is served.
type File struct {
	Path string
	Mode fs.FileMode // 0 means 0600
	// Owner, when set, is given the file (chown; needs the privilege).
	Owner   *Owner
	InPlace bool
	// Render makes the file's content from a token; nil means the access
	// token and a newline.
	Render func(*latch.Token) ([]byte, error)
}

// Owner is a file's owner and group; a GID of -1 keeps the group.
type Owner struct{ UID, GID int }

func (f *File) String() string {
	if f.Render != nil {
		return "template output " + f.Path
	}
	return "token file " + f.Path
}

// Check reports what would keep f from being written: a directory that
// does not exist or is not one.
func (f *File) Check() error {
	dir := filepath.Dir(f.Path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: the directory %s: %w", f, dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", f, dir)
	}
	if fi, err := os.Stat(f.Path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s: it is a directory", f)
	}
	return nil
}

// Deliver writes t.
func (f *File) Deliver(t *latch.Token) error {
	data := []byte(t.AccessToken + "\n")
	if f.Render != nil {
		var err error
		if data, err = f.Render(t); err != nil {
			return err
		}
	}
	return f.write(data)
}

// Clear leaves the file empty.
func (f *File) Clear() error { return f.write(nil) }

func (f *File) mode() fs.FileMode {
	if f.Mode == 0 {
		return 0o600
	}
	return f.Mode
}

func (f *File) write(data []byte) error {
	if f.InPlace {
		return f.writeInPlace(data)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".*.tmp") // 0600
	if err != nil {
		return unwrapPath(err)
	}
	defer os.Remove(tmp.Name()) // after a rename, there is nothing
	err = f.own(tmp)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	return unwrapPath(err)
}

func (f *File) writeInPlace(data []byte) error {
	lock := flock.New(f.Path, flock.SetPermissions(f.mode()))
	if err := lock.Lock(); err != nil {
		return unwrapPath(err)
	}
	defer lock.Close()
	w, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE, f.mode())
	if err != nil {
		return unwrapPath(err)
	}
	err = f.own(w)
	if err == nil {
		_, err = w.WriteAt(data, 0)
	}
	if err == nil {
		err = w.Truncate(int64(len(data)))
	}
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return unwrapPath(err)
}

// own gives the open file its mode and owner.
func (f *File) own(w *os.File) error {
	if err := w.Chmod(f.mode()); err != nil {
		return err
	}
	if f.Owner != nil {
		if err := w.Chown(f.Owner.UID, f.Owner.GID); err != nil {
			return err
		}
	}
	return nil
}

// unwrapPath drops the *fs.PathError's operation and temporary name, so a
// message names the sink once and says what is wrong.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// TemplateData is what a template is rendered with.
type TemplateData struct {
	AccessToken   string
	TokenType     string    // "Bearer" when the server said nothing
	Expiry        time.Time // zero when the server said nothing
	Authorization string    // the header value: "Bearer …"
}

// ParseTemplate parses a text/template for a File's Render, and renders
// it once with a sample token so a template that fails does so now, not
// at the first rotation. Besides text/template's own functions, `json`
// quotes a value as JSON ({"token": {{json .AccessToken}}}).
func ParseTemplate(name, text string) (func(*latch.Token) ([]byte, error), error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
	if err != nil {
		return nil, err
	}
	render := func(t *latch.Token) ([]byte, error) {
		typ := t.TokenType
		if typ == "" {
			typ = "Bearer"
		}
		var buf bytes.Buffer
		d := TemplateData{AccessToken: t.AccessToken, TokenType: typ, Expiry: t.Expiry, Authorization: t.Authorization()}
		if err := tmpl.Execute(&buf, d); err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		return buf.Bytes(), nil
	}
	sample := &latch.Token{AccessToken: "sample", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	if _, err := render(sample); err != nil {
		return nil, err
	}
	return render, nil
}
