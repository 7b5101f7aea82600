package check

import (
	"context"
	"net/http"
	"strings"
	"time"

	"bootforge/internal/catalog"
	"bootforge/internal/config"
	"bootforge/internal/mirror"
)

// Mirrors is the checklist's mirrors item: it makes the check the running
// server makes in the background (mirror.Check) of every configured
// mirror against this server's active versions, and fails if any mirror
// would not be used: unreachable, missing a version, or with another
// manifest. Without mirrors it skips.
func Mirrors(c *catalog.Catalog, root string, mirrors []config.Mirror) Item {
	const name = "mirrors"
	if len(mirrors) == 0 {
		return Skip(name, "no mirrors configured")
	}
	idx, err := mirror.Active(c, root)
	if err != nil {
		return Fail(name, "this server's active versions: %v", err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	var ok, bad []string
	for _, m := range mirrors {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st := mirror.Check(ctx, client, m.URL, idx)
		cancel()
		if st.OK {
			ok = append(ok, m.URL)
		} else {
			bad = append(bad, m.URL+": not used: "+st.Reason)
		}
	}
	if len(bad) > 0 {
		return Fail(name, "%s", strings.Join(bad, "; "))
	}
	return Pass(name, "%s verified: %s with this server's manifests", strings.Join(ok, ", "), count(len(idx.Versions), "active version"))
}
