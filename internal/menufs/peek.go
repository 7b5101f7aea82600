package menufs

import (
	"errors"
	"io/fs"

	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/menu"
)

// Disk opens a file on the directory underneath, with no menu and no
// one-shot side effects.
func (m *FS) Disk(req bootfs.Request) (bootfs.File, error) {
	return (*m.disk.Load()).Open(req)
}

// PeekGRUB renders the GRUB file that name (cleaned; a client's menu,
// bootforge/grub/<mac>.cfg or the SMBIOS facts path, or the forwarder
// grub.cfg-01-<mac>) would return to req, and the profile of its client,
// without any side effect: no one-shot moves, nothing is logged or
// recorded. ok is false when name is not a generated GRUB file for one
// client (a file on disk wins, as in Open).
func (m *FS) PeekGRUB(name string, req bootfs.Request) (text string, p boot.Profile, ok bool, err error) {
	req.Client = plainClient(req.Client)
	c, forward, ok := grubRequest(name, req.Client.Addr())
	if !ok || c.MAC == nil || !m.Inventory().HasProfiles() {
		return "", boot.Profile{}, false, nil
	}
	dreq := req
	dreq.Path = name
	if f, err := m.Disk(dreq); err == nil {
		f.Close()
		return "", boot.Profile{}, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", boot.Profile{}, false, err
	}
	c = m.known(c)
	var shot *boot.NextBoot
	if m.OneShots != nil {
		if shot, err = m.OneShots.NextBoot(c.MAC); err != nil {
			return "", boot.Profile{}, true, err
		}
	}
	d, err := boot.Decide(c, m.Inventory(), shot, m.now())
	if err != nil {
		return "", boot.Profile{}, true, err
	}
	if forward {
		return menu.GRUBForward, d.Choice.Profile, true, nil
	}
	text, err = menu.Render(d, menu.FormatGRUB, menu.Site{BaseURL: menu.BaseURL(req.Protocol, req.Host)})
	return text, d.Choice.Profile, true, err
}
