package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"bootforge/internal/store"
)

// Roles.
const (
	RoleRead  = "read"
	RoleAdmin = "admin"
)

// TokenStore holds API tokens (their hashes).
type TokenStore interface {
	TokenByID(id string) (store.Token, bool, error)
}

// NewToken makes a token for role and stores only its hash. The returned
// secret is shown once; it reads "bf_<id>_<secret>".
func NewToken(db interface{ PutToken(store.Token) error }, role, name string) (string, error) {
	if role != RoleRead && role != RoleAdmin {
		return "", fmt.Errorf("role %q is not one of read, admin", role)
	}
	id, secret := make([]byte, 4), make([]byte, 20)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	tok := "bf_" + hex.EncodeToString(id) + "_" + hex.EncodeToString(secret)
	err := db.PutToken(store.Token{ID: hex.EncodeToString(id), Hash: hashToken(tok), Role: role, Name: name, Created: time.Now()})
	if err != nil {
		return "", err
	}
	return tok, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// roleOf checks a bearer token and returns its role, or "".
func roleOf(db TokenStore, tok string) string {
	parts := strings.Split(tok, "_")
	if len(parts) != 3 || parts[0] != "bf" {
		return ""
	}
	t, ok, err := db.TokenByID(parts[1])
	if err != nil || !ok {
		return ""
	}
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hashToken(tok))) != 1 {
		return ""
	}
	return t.Role
}
