package httpd

import "crypto/tls"

// BootCipherSuites are the TLS 1.2 suites of the boot TLS listener, in
// order of preference. UEFI HTTPS boot (EDK2, e.g. Debian's OVMF) offers
// only RSA key exchange and DHE: 0x9f 0x9e 0x6b 0x67 0x39 0x33 0x9d 0x9c
// 0x3d 0x3c 0x35 0x2f. Go has no DHE, nor 0x3d; it has the five RSA key
// exchange suites below, which it leaves out of its defaults since 1.22
// because they give no forward secrecy. They are listed here, after the
// ECDHE suites, so that a client offering ECDHE (curl, a modern iPXE)
// still gets forward secrecy, and only firmware falls back to RSA.
var BootCipherSuites = []uint16{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384, // 0x9d
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256, // 0x9c
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256, // 0x3c
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,    // 0x35
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,    // 0x2f
}

// BootTLSConfig is the boot TLS listener's TLS: cert (RSA, issued by
// bootforge's CA) and BootCipherSuites, TLS 1.2 at least. It serves the
// same files, path rules, access log and limits as the other listeners;
// TLSListener logs its failed handshakes as warnings.
func BootTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: BootCipherSuites,
	}
}
