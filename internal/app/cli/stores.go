package cli

// The store kinds --credential-store can name by URL, one line each: each
// package registers itself with storeurl.
import (
	"strings"

	_ "github.com/latchdev/latch/pgstore"
	_ "github.com/latchdev/latch/redisstore"
	"github.com/latchdev/latch/storeurl"
)

// storeSchemes lists the URL forms for a help text: "postgres:// or redis://".
func storeSchemes() string {
	var f []string
	for _, k := range storeurl.Kinds() {
		f = append(f, k.ID+"://")
	}
	return strings.Join(f, " or ")
}

// storeCompletions are the URL forms as shell completions.
func storeCompletions() []string {
	var c []string
	for _, k := range storeurl.Kinds() {
		c = append(c, k.ID+"://\ta fleet store on "+k.Name)
	}
	return c
}
