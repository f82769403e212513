package config_test

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/config"
)

func ExampleParse() {
	_, err := config.Parse(config.Snapshot{Pools: []v1beta1.IPAddressPool{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "pool-a"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24", "198.51.100.5/24"}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "pool-b"},
			Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10 - 192.0.2.12"}},
		},
	}})
	fmt.Println(errors.Is(err, config.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// IPAddressPool herald-system/pool-a: spec.addresses[1] "198.51.100.5/24": 198.51.100.5/24 has host bits set; did you mean 198.51.100.0/24?
	// IPAddressPool herald-system/pool-b: spec.addresses[0] "192.0.2.10 - 192.0.2.12": overlaps IPAddressPool pool-a spec.addresses[0] "192.0.2.0/24" in 192.0.2.10-192.0.2.12; an address may belong to one pool only; remove the common addresses from one of the pools
	// IPAddressPool herald-system/pool-a: spec.addresses[0] "192.0.2.0/24": overlaps IPAddressPool pool-b spec.addresses[0] "192.0.2.10 - 192.0.2.12" in 192.0.2.10-192.0.2.12; an address may belong to one pool only; remove the common addresses from one of the pools
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
