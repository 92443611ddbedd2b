package oauthtest

import (
	_ "github.com/graph-gophers/graphql-go"
	_ "github.com/zitadel/oidc/v3/pkg/op"
	_ "golang.org/x/oauth2"
)
