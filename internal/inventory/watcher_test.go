package inventory

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bootforge/internal/config"
)

// Run's poller and SetSource (SIGHUP) reload at the same time; under
// -race this finds unsynchronised state in the Watcher.
func TestWatcherRunAndSetSourceConcurrently(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profiles/lab.yaml", goodProfile)
	good := Source{Dir: dir}
	bad := Source{Dir: dir, Config: config.Inventory{Profiles: []config.Profile{{Name: "neg", Priority: -1}}}}
	w, err := NewWatcher(good, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.Run(ctx, time.Millisecond) }()
	go func() { // keep the poller reloading: change a file's size
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			// Whole files only (write, then rename), so that every
			// load sees a valid inventory.
			tmp := filepath.Join(dir, "profiles", ".extra.tmp")
			text := fmt.Sprintf("# %s\nname: extra\npriority: 20\n", strings.Repeat("x", i%7))
			if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(dir, "profiles", "extra.yaml")); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 100; i++ {
		src := good
		if i%2 == 1 {
			src = bad
		}
		err := w.SetSource(src)
		if (err != nil) != (i%2 == 1) {
			t.Errorf("SetSource #%d: %v", i, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	cancel()
	wg.Wait()
	if err := w.SetSource(good); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lab", "extra"} {
		if _, ok := w.Current().Profile(name); !ok {
			t.Errorf("profile %q not in the inventory", name)
		}
	}
}
