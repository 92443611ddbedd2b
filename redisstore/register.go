package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/latchdev/latch/storeurl"
)

func init() {
	storeurl.Register(storeurl.Kind{
		ID: "redis", Name: "Redis", Schemes: []string{"redis", "rediss"},
		Open: func(ctx context.Context, url string, o storeurl.Options) (storeurl.Store, error) {
			// A program that opens its store from a URL is a command: the
			// client's own pool retries, logged, say nothing a person can
			// act on (what failed is in the error).
			redis.SetLogger(quiet{})
			return Open(ctx, url, Options{Key: o.Key, Plaintext: o.Plaintext})
		},
	})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
