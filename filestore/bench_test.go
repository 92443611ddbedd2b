package filestore

import (
	"testing"

	"github.com/latchdev/latch/storekit"
)

// BenchmarkFileStoreLoad measures one Load of a typical (2 KiB) token set.
func BenchmarkFileStoreLoad(b *testing.B) {
	s := New(b.TempDir())
	if err := storekit.Put(ctx, s, key, gen(1, 2048)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Load(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileStoreSave measures one atomic Save (temp, fsync, rename,
// fsync dir) of a typical (2 KiB) token set.
func BenchmarkFileStoreSave(b *testing.B) {
	s := New(b.TempDir())
	t := gen(1, 2048)
	for b.Loop() {
		if err := storekit.Put(ctx, s, key, t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileStoreSaveLarge: a 200 KiB set, as in the crash test.
func BenchmarkFileStoreSaveLarge(b *testing.B) {
	s := New(b.TempDir())
	t := gen(1, crashSizeBench)
	for b.Loop() {
		if err := storekit.Put(ctx, s, key, t); err != nil {
			b.Fatal(err)
		}
	}
}

const crashSizeBench = 200 << 10
