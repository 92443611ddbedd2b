package jsonobj

import "testing"

func TestLooks(t *testing.T) {
	for in, want := range map[string]bool{
		`{}`: true, " \r\n\t{\"a\":1}": true, `null`: false, `[{}]`: false, ``: false, `  `: false, `<html>{`: false,
	} {
		if got := Looks([]byte(in)); got != want {
			t.Errorf("Looks(%q) = %t, want %t", in, got, want)
		}
	}
}
