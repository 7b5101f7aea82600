package main

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"bootforge/internal/config"
)

// changeAll gives every setting below v another value; a list gets one
// more element.
func changeAll(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[netip.Addr]():
		v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.99")))
		return
	case reflect.TypeFor[config.Prefix]():
		v.Set(reflect.ValueOf(config.Prefix{Prefix: netip.MustParsePrefix("198.51.100.0/24")}))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("yaml") != "" {
				changeAll(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		panic("changeAll: no case for " + v.Type().String())
	}
}

// What reload declares live is what it takes over, no more and no less:
// every change liveConfig keeps is a live key, every change it leaves for
// a restart is not.
func TestReloadKeys(t *testing.T) {
	old := config.Default()
	cfg := config.Default()
	changeAll(reflect.ValueOf(&cfg).Elem())
	all := config.Changed(old, cfg)
	for _, key := range config.Keys() {
		if !slices.Contains(all, key) {
			t.Fatalf("the test changed every setting but %s: %q", key, all)
		}
	}
	run := liveConfig(old, cfg)
	for _, key := range config.Changed(old, run) {
		if !appliesLive(key) {
			t.Errorf("reload takes over %s, which is not declared live", key)
		}
	}
	for _, key := range config.Changed(run, cfg) {
		if appliesLive(key) {
			t.Errorf("%s is declared live, but reload leaves it for a restart", key)
		}
	}

	for key, live := range map[string]bool{
		"root": true, "tftp.max_window_size": true, "tftp.case_insensitive": true, "tftp.timeout": true,
		"http.access_log": true, "http.max_requests": true, "log.level": true, "allow": true, "tftp.allow": true,
		"http.allow": true, "dhcp.allow": true, "api.allow": true, "allowx": false, "dhcp.allowx": false,
		"inventory.default_profile": true, "inventory.profiles": true, "inventory.profiles[2].menu.title": true,
		"tftp.listen": false, "tftp.enabled": false, "data_dir": false, "store_sync": false, "log.format": false,
		"http.listen": false, "http.enabled": false, "http.tls.listen": false, "http.tls.cert": false,
		"api.listen": false, "audit.retention": false, "dhcp.mode": false, "dhcp.subnets[0].router": false,
		"dhcp.loaders.bios": false, "rootx": false, "tftpx.a": false, "inventoryx": false,
	} {
		if appliesLive(key) != live {
			t.Errorf("appliesLive(%q) = %v, want %v", key, !live, live)
		}
	}
}

// Every restart key is named on its own, at the element where that is
// cheap, so an operator sees exactly what did not take.
func TestReloadNamesRestartKeys(t *testing.T) {
	parse := func(text string) config.Config {
		t.Helper()
		cfg, err := config.Parse("r.yaml", []byte("data_dir: /srv/state\nroot: /srv/boot\n"+text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	old := parse("dhcp:\n  subnets:\n    - subnet: 192.0.2.0/24\n      router: 192.0.2.1\n")
	cfg := parse("log:\n  format: json\ndhcp:\n  subnets:\n    - subnet: 192.0.2.0/24\n      router: 192.0.2.254\ntftp:\n  retries: 3\n")
	var restart []string
	for _, key := range config.Changed(old, cfg) {
		if !appliesLive(key) {
			restart = append(restart, key)
		}
	}
	if got := strings.Join(restart, " "); got != "log.format dhcp.subnets[0].router" {
		t.Errorf("restart keys %q", got)
	}
}
