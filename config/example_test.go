package config_test

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

func ExampleParse() {
	_, err := config.Parse(config.Snapshot{Pools: []v1beta1.IPAddressPool{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "pool-a"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24"}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "pool-b"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10 - 192.0.2.12"}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "pool-c"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "198.51.100.5/24"}},
		},
	}})
	fmt.Println(errors.Is(err, config.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// IPAddressPool herald-system/pool-b: spec.addresses[0] "192.0.2.10 - 192.0.2.12": overlaps IPAddressPool pool-a spec.addresses[0] "192.0.2.0/24" in 192.0.2.10-192.0.2.12; an address may belong to one pool only; remove the common addresses from one of the pools
	// IPAddressPool herald-system/pool-c: spec.addresses[1] "198.51.100.5/24": 198.51.100.5/24 has host bits set; did you mean 198.51.100.0/24?
}

// ParseUsable keeps what works: the overlapping pool-b (newer than pool-a) and the invalid pool-c
// are left out, pool-a is in force.
func ExampleParseUsable() {
	meta := func(name string, minute int) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "herald-system", Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))}
	}
	cfg, rep := config.ParseUsable(config.Snapshot{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: meta("pool-b", 1), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24"}}},
			{ObjectMeta: meta("pool-a", 2), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10-192.0.2.12"}}},
		},
		L2Advertisements: []v1beta1.L2Advertisement{
			{ObjectMeta: meta("l2", 3), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"pool-a", "pool-b", "pool-z"}}},
		},
	}, nil)
	fmt.Println(cfg.PoolNames(), cfg.L2Advertisements[0].Pools)
	for _, e := range rep.Errors {
		fmt.Printf("error: %v; %s\n", e, rep.Fate(e).Consequence())
	}
	for _, w := range rep.Warnings {
		fmt.Println("warning:", w)
	}
	// Output:
	// [pool-b] [pool-b]
	// error: IPAddressPool herald-system/pool-a: spec.addresses[0] "192.0.2.10-192.0.2.12": overlaps IPAddressPool pool-b spec.addresses[0] "192.0.2.0/24" in 192.0.2.10-192.0.2.12; an address may belong to one pool only; remove the common addresses from one of the pools; the object is not used until this is fixed
	// warning: L2Advertisement herald-system/l2: spec.ipAddressPools[2] "pool-z": no IPAddressPool with this name (known: pool-a, pool-b); the advertisement covers its other pools; name an existing pool or create it
}

func ExampleParseAddresses() {
	r, _ := config.ParseAddresses("192.0.2.10-192.0.2.20")
	fmt.Println(r.First, r.Last, r.Size(), r.Prefixes())
	_, err := config.ParseAddresses("192.0.2.5/24")
	fmt.Println(err)
	// Output:
	// 192.0.2.10 192.0.2.20 11 [192.0.2.10/31 192.0.2.12/30 192.0.2.16/30 192.0.2.20/32]
	// "192.0.2.5/24": 192.0.2.5/24 has host bits set; did you mean 192.0.2.0/24?
}

func ExampleParseCommunity() {
	c, _ := config.ParseCommunity("large:65000:1:2")
	fmt.Println(c.Large, c.LargeValue, c)
	// Output:
	// true [65000 1 2] large:65000:1:2
}
