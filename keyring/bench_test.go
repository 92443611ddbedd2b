package keyring

import (
	"strings"
	"testing"
)

// BenchmarkKeyringLoad measures one Load of a 2 KiB set from the real keyring.
func BenchmarkKeyringLoad(b *testing.B) {
	s := realStore(b)
	if err := s.Save(ctx, key, nil, token(strings.Repeat("a", 2048), 1)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Load(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyringSave measures one rotation's Save (compare, write, read back).
func BenchmarkKeyringSave(b *testing.B) {
	s := realStore(b)
	t := token(strings.Repeat("a", 2048), 1)
	if err := s.Save(ctx, key, nil, t); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Save(ctx, key, t, t); err != nil {
			b.Fatal(err)
		}
	}
}
