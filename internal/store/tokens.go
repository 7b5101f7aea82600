package store

import (
	"database/sql"
	"errors"
	"time"
)

// Token is a stored API token: never the secret, only its hash.
type Token struct {
	ID      string
	Hash    string
	Role    string
	Name    string
	Created time.Time
}

// PutToken stores a token.
func (s *core) PutToken(t Token) error {
	return s.exec(`INSERT INTO tokens (id, hash, role, name, created) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Role, t.Name, t.Created.UnixNano())
}

// TokenByID returns a token, or false.
func (s *core) TokenByID(id string) (Token, bool, error) {
	var t Token
	var created int64
	err := s.queryRow(`SELECT id, hash, role, name, created FROM tokens WHERE id = ?`, id).Scan(&t.ID, &t.Hash, &t.Role, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, false, nil
	}
	if err != nil {
		return Token{}, false, err
	}
	t.Created = time.Unix(0, created)
	return t, true, nil
}

// Tokens returns every token, oldest first.
func (s *core) Tokens() ([]Token, error) {
	rows, err := s.query(`SELECT id, hash, role, name, created FROM tokens ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created int64
		if err := rows.Scan(&t.ID, &t.Hash, &t.Role, &t.Name, &created); err != nil {
			return nil, err
		}
		t.Created = time.Unix(0, created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken revokes a token: its row goes, so it can never match again.
func (s *core) DeleteToken(id string) error {
	return s.exec(`DELETE FROM tokens WHERE id = ?`, id)
}
