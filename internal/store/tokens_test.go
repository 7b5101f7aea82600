package store

import (
	"testing"
	"time"
)

func TestTokensListAndRevoke(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if toks, err := s.Tokens(); err != nil || len(toks) != 0 {
				t.Fatalf("an empty store: %v %v", toks, err)
			}
			now := time.Now()
			for i, id := range []string{"bbbb", "aaaa", "cccc"} {
				if err := s.PutToken(Token{ID: id, Hash: "h" + id, Role: "read", Name: "n" + id, Created: now.Add(time.Duration(i) * time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			toks, err := s.Tokens()
			if err != nil || len(toks) != 3 || toks[0].ID != "bbbb" || toks[2].ID != "cccc" || toks[1].Name != "naaaa" || !toks[0].Created.Equal(now) {
				t.Fatalf("Tokens: %+v %v, want oldest first", toks, err)
			}
			if err := s.DeleteToken("aaaa"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.TokenByID("aaaa"); ok {
				t.Error("a revoked token is still found")
			}
			if toks, _ := s.Tokens(); len(toks) != 2 {
				t.Errorf("after a revoke: %+v", toks)
			}
		})
	}
}
