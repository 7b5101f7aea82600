package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"bootforge/internal/config"
)

// apiClient is how a command on the server's machine reaches the
// management API: its base URL, http:// or, with api.tls, https://, and a
// client for it. With api.tls the client accepts exactly the certificate
// the server is configured with (api.tls.cert, else the self-signed one in
// data_dir/tls) and nothing else: pinning it works for the self-signed
// certificate and for one whose names do not cover the loopback address
// the command dials.
func apiClient(cfg config.Config, timeout time.Duration) (string, *http.Client, error) {
	addr := local(cfg.API.Listen)
	if !cfg.API.TLS.Enabled {
		return "http://" + addr, &http.Client{Timeout: timeout}, nil
	}
	certFile := cfg.API.TLS.Cert
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, "tls", "cert.pem")
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		return "", nil, fmt.Errorf("api.tls: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", nil, fmt.Errorf("api.tls: %s holds no PEM certificate", certFile)
	}
	want := block.Bytes
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below, which is stricter
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return errors.New("the API's certificate is not the one in " + certFile)
			}
			return nil
		},
	}
	return "https://" + addr, &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConfig}}, nil
}

// apiGet fetches url with client and returns the status and up to 1 MiB
// of the body.
func apiGet(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}
