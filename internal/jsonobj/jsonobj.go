// Package jsonobj tells whether a server's answer is meant as a JSON
// object, before it is decoded: encoding/json accepts "null" into a
// struct without error, and an answer that is not an object gets a
// clearer message than the decoder's. Seconds reads the durations such
// answers give in seconds.
package jsonobj

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Looks reports whether b, after leading white space (RFC 8259 §2),
// starts a JSON object.
func Looks(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// Seconds reads a JSON number of seconds (expires_in, interval), capped
// at limit: 0 for an absent one; an error for one that is not a number or
// is negative.
func Seconds(n json.Number, limit time.Duration) (time.Duration, error) {
	if n == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, errors.New("is not a number")
	}
	if f < 0 {
		return 0, errors.New("is negative")
	}
	if f >= limit.Seconds() {
		return limit, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}
