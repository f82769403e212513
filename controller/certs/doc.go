// Package certs gives the controller's validating webhook a serving certificate without
// cert-manager: a self-signed CA and a serving certificate for the webhook Service, kept in a
// Secret, written into the webhook server's certificate folder and patched as the CA bundle into
// the ValidatingWebhookConfiguration, and renewed well before they expire.
//
// The certificate logic (Renew, NewCA, NewServingCert) is pure: it takes the time and returns
// PEM bytes. Manager is the part that talks to the API server and the file system: it watches
// the Secret and the webhook configuration by name, so a deleted Secret or a cleared CA bundle is
// repaired within seconds, and checks for renewal on a timer.
//
// Why not cert-controller's rotator (github.com/open-policy-agent/cert-controller), which does
// the same job: when its CA rotates, it replaces the CA bundle with the new CA alone, so until
// every API server and every webhook replica has the new bundle and certificate, calls signed by
// one and checked against the other fail, and with failurePolicy Fail the Herald objects cannot
// be changed. Renew here adds the new CA in front of the old one and keeps the old one until the
// certificates it signed have expired, so rotation never breaks a call.
package certs
