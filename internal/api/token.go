package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// MaxTokenName is the longest token name, in bytes.
const MaxTokenName = 64

// CheckTokenName is the one rule for a token's name, a note on who uses
// it: empty, or at most MaxTokenName bytes of printable UTF-8 (spaces
// included). `token list` shows it, and PostgreSQL refuses text that is
// not UTF-8, so a name either store would keep differently, or a
// terminal would act on, is refused before it is stored.
func CheckTokenName(name string) error {
	switch {
	case len(name) > MaxTokenName:
		return fmt.Errorf("token name %q is %d bytes long; at most %d", name, len(name), MaxTokenName)
	case !utf8.ValidString(name):
		return fmt.Errorf("token name %q is not valid UTF-8", name)
	case strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return fmt.Errorf("token name %q is not printable text (it has a control character, a tab or a line break)", name)
	}
	return nil
}

// NewToken makes a token for role and stores only its hash. The returned
// secret is shown once; it reads "bf_<id>_<secret>". Every token is made
// here, so its name is checked here (CheckTokenName).
func NewToken(db interface{ PutToken(store.Token) error }, role, name string) (string, error) {
	if role != RoleRead && role != RoleAdmin {
		return "", fmt.Errorf("role %q is not one of read, admin", role)
	}
	if err := CheckTokenName(name); err != nil {
		return "", err
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

// lookupRole returns the role of a bearer token: "" for a token that is
// malformed, unknown or revoked, and an error when the store could not
// be asked (the token may be good).
func lookupRole(db TokenStore, tok string) (string, error) {
	// Only a token of NewToken's shape reaches the store: anything else
	// is unknown, never a store error (PostgreSQL refuses an ID that is
	// not UTF-8 with one).
	parts := strings.Split(tok, "_")
	if len(parts) != 3 || parts[0] != "bf" || !isHex(parts[1], 8) || !isHex(parts[2], 40) {
		return "", nil
	}
	t, ok, err := db.TokenByID(parts[1])
	if err != nil || !ok {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hashToken(tok))) != 1 {
		return "", nil
	}
	return t.Role, nil
}

// isHex reports whether s is n lower-case hex digits, as NewToken writes.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
