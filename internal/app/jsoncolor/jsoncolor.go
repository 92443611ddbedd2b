// Package jsoncolor pretty-prints JSON (RFC 8259) for a terminal,
// optionally with ANSI colours, in the manner of gh and jq.
package jsoncolor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ANSI SGR colours, as gh uses them.
const (
	colorDelim  = "1;38" // bright white
	colorKey    = "1;34" // bright blue
	colorNull   = "36"   // cyan
	colorString = "32"   // green
	colorBool   = "33"   // yellow
)

// Write reads one or more JSON values from r and writes each to w,
// indented by indent per level (compact when indent is "") and followed by
// a newline. With color set it adds ANSI colours. Strings and numbers are
// copied verbatim. Each value is checked before any of it is written; a
// syntax error stops the output and is returned.
func Write(w io.Writer, r io.Reader, indent string, color bool) error {
	bw := bufio.NewWriter(w)
	p := &printer{w: bw, indent: indent, color: color}
	dec := json.NewDecoder(r)
	var err error
	for {
		var v json.RawMessage
		if err = dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			} else {
				err = fmt.Errorf("read JSON: %w", err)
			}
			break
		}
		p.value(v)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

type printer struct {
	w      *bufio.Writer
	indent string
	color  bool
}

// value formats one valid JSON value, scanning its bytes.
func (p *printer) value(b []byte) {
	depth := 0
	open := false // just after '{' or '[': a newline is due unless it closes
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '}', ']':
			depth--
			if !open {
				p.newline(depth)
			}
			open = false
			p.paint(colorDelim, b[i:i+1])
			continue
		}
		if open {
			p.newline(depth)
			open = false
		}
		switch c {
		case '{', '[':
			p.paint(colorDelim, b[i:i+1])
			depth++
			open = true
		case ',':
			p.paint(colorDelim, b[i:i+1])
			p.newline(depth)
		case ':':
			p.paint(colorDelim, b[i:i+1])
			if p.indent != "" {
				p.w.WriteByte(' ')
			}
		case '"':
			end := stringEnd(b, i)
			color := colorString
			if isKey(b, end) {
				color = colorKey
			}
			p.paint(color, b[i:end])
			i = end - 1
		default: // number, true, false, null
			end := i + 1
			for end < len(b) && !isDelim(b[end]) {
				end++
			}
			switch c {
			case 't', 'f':
				p.paint(colorBool, b[i:end])
			case 'n':
				p.paint(colorNull, b[i:end])
			default:
				p.w.Write(b[i:end])
			}
			i = end - 1
		}
	}
	p.w.WriteByte('\n')
}

// stringEnd returns the index just past the string starting at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// isKey reports whether the next non-space byte from i is ':'.
func isKey(b []byte, i int) bool {
	for ; i < len(b); i++ {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return b[i] == ':'
		}
	}
	return false
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '}', ']':
		return true
	}
	return false
}

func (p *printer) newline(depth int) {
	if p.indent == "" {
		return
	}
	p.w.WriteByte('\n')
	for range depth {
		p.w.WriteString(p.indent)
	}
}

func (p *printer) paint(color string, s []byte) {
	if !p.color {
		p.w.Write(s)
		return
	}
	p.w.WriteString("\x1b[")
	p.w.WriteString(color)
	p.w.WriteByte('m')
	p.w.Write(s)
	p.w.WriteString("\x1b[m")
}
