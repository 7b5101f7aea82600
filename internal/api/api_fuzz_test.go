package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzWriteBodies sends arbitrary JSON bodies, and names in the path,
// through the real handler to every endpoint that reads a body: the
// answer is never a 5xx or a panic, and always a JSON document.
func FuzzWriteBodies(f *testing.F) {
	f.Add(uint8(0), "pc1", `{"macs": ["52:54:00:12:34:56"], "labels": ["kiosk"], "profile": "lab"}`)
	f.Add(uint8(0), "pc0", `{"name": "pc0", "macs": ["52:54:00:00:00:10"]}`)
	f.Add(uint8(0), "pc2", `{"uuid": "4C4C4544-0000-1000-8000-000000000001", "secure_boot": true}`)
	f.Add(uint8(0), "pc3", `{"macs": "52:54:00:00:00:11"}`)
	f.Add(uint8(0), "pc4", `{"macs": ["52:54:00:00:00:12"]} trailing`)
	f.Add(uint8(0), "pc5", `{"macs": ["52:54:00:00:00:12"], "macs": []}`)
	f.Add(uint8(1), "52:54:00:00:00:10", `{"entry": "install", "expires": "2h"}`)
	f.Add(uint8(1), "52-54-00-00-00-10", `{"entry": "winpe", "always": true}`)
	f.Add(uint8(1), "00:16:3e:00:00:01", `{"entry": "rescue", "expires": "-1h"}`)
	f.Add(uint8(1), "zz", `{"entry": ""}`)
	f.Add(uint8(2), "pc0", ``)
	f.Add(uint8(3), "52:54:00:00:00:10", ``)
	f.Add(uint8(0), "\x1b[31mRED", `{}`)
	f.Fuzz(func(t *testing.T, op uint8, name, body string) {
		a := newAPITest(t)
		method, path := "PUT", "/api/v1/hosts/"
		switch op % 4 {
		case 1:
			path = "/api/v1/next-boot/"
		case 2:
			method = "DELETE"
		case 3:
			method, path = "DELETE", "/api/v1/next-boot/"
		}
		target := path + url.PathEscape(name)
		r := httptest.NewRequest(method, "/", strings.NewReader(body))
		r.URL.Path, r.URL.RawPath = path+name, target // as the client sent it
		r.RemoteAddr = "192.0.2.7:40000"
		r.Header.Set("Authorization", "Bearer "+a.admin)
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body)
		}
		if w.Code != 301 && w.Code != 307 && w.Code != 308 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q: %d, body not JSON: %q", method, target, body, w.Code, w.Body)
		}
		// Whatever was stored, the list still answers.
		l := httptest.NewRequest("GET", "/api/v1/hosts", nil)
		l.Header.Set("Authorization", "Bearer "+a.read)
		lw := httptest.NewRecorder()
		a.handler.ServeHTTP(lw, l)
		if lw.Code != 200 || !json.Valid(lw.Body.Bytes()) {
			t.Fatalf("after %s %s %q: host list %d %s", method, target, body, lw.Code, lw.Body)
		}
	})
}
