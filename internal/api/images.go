package api

import (
	"net/http"
	"sync"
	"time"

	"bootforge/internal/catalog"
	"bootforge/internal/image"
)

// reverify is how old a verification may be before the image list starts
// another.
const reverify = time.Hour

// imageView is one built version in /api/v1/images.
type imageView struct {
	Name    string     `json:"name"`
	Version string     `json:"version"`
	State   string     `json:"state"`
	Built   time.Time  `json:"built"`
	Verify  verifyView `json:"verify"`
}

// verifyView is the outcome of re-hashing a version against its manifest
// (catalog.Verify, as `bootforge image verify` does): "ok", "drift" (with
// each drift), "error" (the version could not be verified), or "pending"
// (not verified yet; it is being verified now).
type verifyView struct {
	Status  string    `json:"status"`
	Checked time.Time `json:"checked,omitzero"`
	Drifts  []string  `json:"drifts,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// verifications are the latest results by NAME@VERSION. Verifying reads
// every byte of a version, so it never runs in a request: listing the
// images starts one background pass over the versions whose result is
// missing or older than reverify, and the list shows the results so far.
// The results are of one catalog: those of a root no longer served are
// dropped, since the new root's copy of a version may differ.
type verifications struct {
	mu      sync.Mutex
	running bool
	of      *catalog.Catalog
	results map[string]verifyView
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	out := []imageView{}
	if s.Images == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	c := s.Images()
	versions, err := c.Versions()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "images", "", err.Error())
		return
	}
	s.collect(c, versions, &out)
	// Written without the lock: a client that stops reading must not
	// hold up the other lists and the verify's results.
	writeJSON(w, http.StatusOK, out)
}

// collect adds each version with its latest result to out, and starts a
// verify of those not verified lately.
func (s *Server) collect(c *catalog.Catalog, versions []image.Version, out *[]imageView) {
	v := &s.verified
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.of != c {
		v.of, v.results = c, nil
	}
	var stale []image.ID
	for _, ver := range versions {
		id := ver.ID.String()
		res, ok := v.results[id]
		if !ok || time.Since(res.Checked) > reverify {
			stale = append(stale, ver.ID)
		}
		if !ok {
			res = verifyView{Status: "pending"}
		}
		*out = append(*out, imageView{Name: ver.ID.Name, Version: ver.ID.Version.String(), State: string(ver.State), Built: ver.Built, Verify: res})
	}
	if len(stale) > 0 && !v.running {
		v.running = true
		go s.verify(c, stale)
	}
}

// verify re-hashes each version in turn and keeps its result.
func (s *Server) verify(c *catalog.Catalog, ids []image.ID) {
	v := &s.verified
	defer func() {
		v.mu.Lock()
		v.running = false
		v.mu.Unlock()
	}()
	for _, id := range ids {
		drifts, err := c.Verify(nil, id)
		res := verifyView{Status: "ok", Checked: time.Now()}
		switch {
		case err != nil:
			res.Status, res.Error = "error", err.Error()
		case len(drifts) > 0:
			res.Status = "drift"
			for _, d := range drifts {
				res.Drifts = append(res.Drifts, d.String())
			}
		}
		v.mu.Lock()
		if v.of == c {
			if v.results == nil {
				v.results = map[string]verifyView{}
			}
			v.results[id.String()] = res
		}
		v.mu.Unlock()
	}
}
