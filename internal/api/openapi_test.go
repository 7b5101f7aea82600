package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The OpenAPI document describes what the handlers do: every error code
// a handler can answer is in the Error schema's enum (a client generated
// from the document refused "client_not_allowed", "busy", "unavailable"
// and "images" as values it could not get), and every path takes exactly
// the methods the document gives it.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas.Error.Properties.Code.Enum

	// Every code the package's handlers write.
	files, _ := filepath.Glob("*.go")
	code := regexp.MustCompile(`writeError\(w, [^,]+, "([a-z_]+)"`)
	var codes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range code.FindAllStringSubmatch(string(src), -1) {
			codes = append(codes, m[1])
		}
	}
	if len(codes) < 5 {
		t.Fatalf("found only %d error codes in the handlers: %v", len(codes), codes)
	}
	for _, c := range codes {
		if !slices.Contains(enum, c) {
			t.Errorf("handlers answer code %q, which the Error schema's enum %v lacks", c, enum)
		}
	}

	a := newAPITest(t)
	params := strings.NewReplacer("{name}", "pc9", "{mac}", "52:54:00:aa:00:09")
	for path, ops := range doc.Paths {
		for _, m := range []string{"GET", "PUT", "DELETE", "POST", "PATCH"} {
			_, documented := ops[strings.ToLower(m)]
			if m == "GET" && path == "/events/stream" {
				continue // a stream that stays open
			}
			var e apiError
			got := a.call(a.admin, m, "/api/v1"+params.Replace(path), "{}", nil)
			json.Unmarshal([]byte(a.lastResponse), &e)
			routed := got != 405 && e.Code != "not_found" || e.Field != ""
			if documented && !routed {
				t.Errorf("%s %s is documented but answers %d %s", m, path, got, a.lastResponse)
			}
			if !documented && got != 405 {
				t.Errorf("%s %s is not documented but answers %d, not 405", m, path, got)
			}
		}
	}
}
