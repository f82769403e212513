package kube

import (
	"reflect"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/client"
)

// ConfigKinds returns a new empty object of each kind that makes up Herald's configuration, in
// the order config.Parse reads them. Caches, watches, the condition writer and the webhook take
// their list from here: a new kind is added here (and to ReadSnapshot and config.Snapshot).
func ConfigKinds() []client.Object {
	return []client.Object{
		&v1beta1.IPAddressPool{}, &v1beta1.L2Advertisement{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BGPPeer{}, &v1beta1.BFDProfile{}, &v1beta1.Community{},
	}
}

// NewConfigObject returns a new empty object of the configuration kind named kind (such as
// config.KindBGPPeer, the Go type's name), or nil when kind is not a configuration kind.
func NewConfigObject(kind string) client.Object {
	for _, o := range ConfigKinds() {
		if reflect.TypeOf(o).Elem().Name() == kind {
			return o
		}
	}
	return nil
}
