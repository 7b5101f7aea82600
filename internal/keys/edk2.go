package keys

import (
	"path/filepath"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
)

// OwnerGUID is the SignatureOwner bootforge writes into the EFI signature
// lists it makes (a GUID of its own; firmware only shows it).
var OwnerGUID = *util.StringToGUID("b35fc275-70a0-4409-afed-211413bd9636")

// EDK2CACerts returns the CA certificate (ca.pem in dir) as the
// EFI_SIGNATURE_LIST that EDK2's HTTPS boot reads its trusted CAs from:
// OVMF takes it through QEMU's -fw_cfg name=etc/edk2/https/cacerts,file=F,
// real firmware through its "TLS Auth Configuration" page (as the
// TlsCaCertificate variable). One list of type EFI_CERT_X509_GUID holding
// one EFI_SIGNATURE_DATA: the owner GUID and the DER certificate.
//
// The list is written by github.com/foxboron/go-uefi (sbctl's library),
// not by hand; p11-kit's "trust extract --format=edk2-cacerts" writes the
// same format, but only of the system trust store.
func EDK2CACerts(dir string) ([]byte, error) {
	c, _, err := readCert(filepath.Join(dir, CACert))
	if err != nil {
		return nil, initHint(err)
	}
	sl := signature.NewSignatureList(signature.CERT_X509_GUID)
	if err := sl.AppendBytes(OwnerGUID, c.Raw); err != nil {
		return nil, errf("signature list: %v", err)
	}
	return sl.Bytes(), nil
}
