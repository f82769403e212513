// Package certs gives the controller's validating webhook a serving certificate without
// cert-manager: a self-signed CA and a serving certificate for the webhook Service, kept in a
// Secret, written into the webhook server's certificate folder and patched as the CA bundle into
// the ValidatingWebhookConfiguration, and renewed well before they expire.
//
// The certificate logic (Renew, NewCA, NewServingCert) is pure: it takes the time and returns
// PEM bytes. Manager is the part that talks to the API server and the file system.
package certs
