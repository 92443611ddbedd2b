package latch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/authcode"
	"github.com/latchdev/latch/discovery"
	"github.com/latchdev/latch/oauthtest"
	"github.com/latchdev/latch/storekit"
)

// Example logs in once against the dev server, then calls the API through
// a Transport that keeps the token fresh.
func Example() {
	ctx := context.Background()
	srv := oauthtest.NewServer(oauthtest.Options{AutoApprove: true})
	defer srv.Close()

	md, err := discovery.Fetch(ctx, nil, srv.URL)
	if err != nil {
		panic(err)
	}
	cfg := discovery.Config(md, "example-cli", nil)
	tok, err := authcode.Login(ctx, cfg, authcode.Options{OpenURL: srv.Browser()})
	if err != nil {
		panic(err)
	}
	store := &storekit.Memory{} // filestore.New(dir) or credstore.Open in a real CLI
	store.Save(ctx, cfg.Key(""), nil, tok)

	src := &latch.Source{Config: cfg, Store: store, Key: cfg.Key("")}
	client := &http.Client{Transport: &latch.Transport{Source: src}}

	srv.ExpireAccessTokens() // the next request meets a 401, refreshes once and replays
	resp, err := client.Get(srv.URL + "/v2/user")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	fmt.Println("refreshes:", srv.Counters().RefreshSuccesses)
	// Output:
	// 200 {"login":"dev","name":"Dev User dev","id":1}
	// refreshes: 1
}

// ExampleOAuth2 hands latch's shared token to an x/oauth2-based client.
func ExampleOAuth2() {
	ctx := context.Background()
	store := &storekit.Memory{}
	key := latch.Key{Issuer: "https://auth.example.com", ClientID: "cli"}
	store.Save(ctx, key, nil, &latch.Token{AccessToken: "at", TokenType: "Bearer", Issuer: key.Issuer, ClientID: key.ClientID})
	src := &latch.Source{Store: store, Key: key}

	ot, err := latch.OAuth2(ctx, src).Token()
	fmt.Println(ot.AccessToken, ot.RefreshToken == "", err)
	// Output: at true <nil>
}
