// Package dirstore is an example store kind kept outside latch's module:
// a directory of sealed files, named by a dir:///PATH URL. It shows what
// adding a store takes: this folder, and one import line in a program
// (_ "…/dirstore"). It registers itself with storeurl, seals with
// package sealed, locks with filelock, and passes storetest.
//
// It is an example, not a store to deploy: a shared directory (NFS) may
// not honour flock, which the lock needs.
package dirstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/filelock"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
	"github.com/latchdev/latch/storeurl"
)

func init() {
	storeurl.Register(storeurl.Kind{
		ID: "dir", Name: "directory", Schemes: []string{"dir"},
		Open: func(_ context.Context, raw string, o storeurl.Options) (storeurl.Store, error) {
			u, err := url.Parse(raw)
			if err != nil || u.Path == "" || u.Host != "" {
				return nil, errors.New("dirstore: want dir:///ABSOLUTE/PATH")
			}
			return Open(u.Path, o.Key)
		},
	})
}

// Store is a latch.Store in a directory: one sealed file per credential.
type Store struct {
	dir string
	box *sealed.Box
	filelock.Locker
}

// Open returns the store in dir, sealing with key (nil: plaintext).
func Open(dir string, key []byte) (*Store, error) {
	box, err := sealed.New(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir, box: box, Locker: filelock.Locker{Dir: dir}}, nil
}

// path names k's file by its key, hex-encoded JSON, so List can read it back.
func (s *Store) path(k latch.Key) string {
	b, _ := json.Marshal(k)
	return filepath.Join(s.dir, hex.EncodeToString(b)+".sealed")
}

// Load returns k's set.
func (s *Store) Load(_ context.Context, k latch.Key) (*latch.Token, error) {
	b, err := os.ReadFile(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load %s: %w", k, latch.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return s.box.Open(k, b)
}

// Save writes t over old, atomically (latch.Store's compare-and-swap;
// callers hold k's lock).
func (s *Store) Save(ctx context.Context, k latch.Key, old, t *latch.Token) error {
	cur, err := s.Load(ctx, k)
	if err := storekit.CompareStored(k, cur, err, old); err != nil {
		return err
	}
	b, err := s.box.Seal(k, t)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path(k))
}

// Delete removes k's set if it is still old.
func (s *Store) Delete(ctx context.Context, k latch.Key, old *latch.Token) error {
	cur, err := s.Load(ctx, k)
	if err := storekit.CompareStored(k, cur, err, old); err != nil {
		return err
	}
	return os.Remove(s.path(k))
}

// List returns the stored keys.
func (s *Store) List(context.Context) ([]latch.Key, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.sealed"))
	if err != nil {
		return nil, err
	}
	var keys []latch.Key
	for _, n := range names {
		b, err := hex.DecodeString(strings.TrimSuffix(filepath.Base(n), ".sealed"))
		var k latch.Key
		if err != nil || json.Unmarshal(b, &k) != nil {
			return nil, fmt.Errorf("dirstore: %s is not a credential file", n)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// String names the store.
func (s *Store) String() string { return "dir://" + s.dir }

// Close does nothing.
func (s *Store) Close() error { return nil }
