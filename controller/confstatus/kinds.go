package confstatus

import "github.com/herald-lb/herald/config"

// Kinds are the configuration kinds that carry a Valid condition, as config.FieldError names them.
var Kinds = []string{
	config.KindIPAddressPool, config.KindL2Advertisement, config.KindBGPAdvertisement,
	config.KindBGPPeer, config.KindBFDProfile, config.KindCommunity,
}
