// Package confstatus keeps the Valid condition of every Herald configuration object
// (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, BFDProfile, Community): True when
// config.Parse finds no problem with the object, False with each problem (field, value and fix)
// in the message otherwise. A reference the validating webhook lets through, such as an
// advertisement still naming a pool deleted in the same `kubectl delete -f`, is reported here
// rather than refused at the door.
//
// The decision is pure (Conditions, over a snapshot and the problems found in it); Writer reads
// the snapshot from the controller's cache and patches the status of the objects whose
// condition changes.
package confstatus
