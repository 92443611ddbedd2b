package pgstore

import (
	"context"

	"github.com/latchdev/latch/storeurl"
)

func init() {
	storeurl.Register(storeurl.Kind{
		ID: "postgres", Name: "PostgreSQL", Schemes: []string{"postgres", "postgresql"},
		PasswordElsewhere: "PGPASSWORD or a pgpass file (~/.pgpass, PGPASSFILE)",
		Open: func(ctx context.Context, url string, o storeurl.Options) (storeurl.Store, error) {
			st, err := Open(ctx, url, Options{Key: o.Key, Plaintext: o.Plaintext})
			if err != nil {
				return nil, err
			}
			return closer{st}, nil
		},
	})
}

// closer is a Store whose Close returns an error, as storeurl.Store's does.
type closer struct{ *Store }

func (c closer) Close() error { c.Store.Close(); return nil }
