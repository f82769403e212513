package allocator_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/herald-lb/herald/controller/allocator"
)

func Example() {
	pools := []allocator.Pool{
		{Name: "public", AutoAssign: true, AvoidBuggyIPs: true, Ranges: []allocator.Range{
			allocator.PrefixRange(netip.MustParsePrefix("192.0.2.0/24")),
			allocator.PrefixRange(netip.MustParsePrefix("2001:db8::/64")),
		}},
		{Name: "gold", AutoAssign: true, Restricted: true, Priority: 10,
			Ranges: []allocator.Range{{First: netip.MustParseAddr("198.51.100.10"), Last: netip.MustParseAddr("198.51.100.20")}},
			Match:  func(s *allocator.Service) bool { return s.NamespaceLabels["tier"] == "gold" }},
	}
	a, err := allocator.New(pools)
	if err != nil {
		panic(err)
	}

	// Start-up: restore what the Services' status says, before any Assign.
	web := &allocator.Service{Key: "shop/web", Namespace: "shop", SharingKey: "shop",
		Ports: []allocator.Port{{Port: 443, Protocol: "TCP"}}}
	if _, err := a.Reserve(web, []netip.Addr{netip.MustParseAddr("192.0.2.7")}); err != nil {
		fmt.Println(err)
	}

	// Reconcile: the Service asks for an address of its own.
	ips := []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	dns := &allocator.Service{Key: "shop/dns", Namespace: "shop", SharingKey: "shop", RequestedIPs: ips,
		Ports: []allocator.Port{{Port: 53, Protocol: "UDP"}}}
	res, err := a.Assign(dns)
	fmt.Println(res.Assigned, err)

	api := &allocator.Service{Key: "gold/api", NamespaceLabels: map[string]string{"tier": "gold"},
		FamilyPolicy: allocator.PreferDualStack, Families: []allocator.Family{allocator.IPv4, allocator.IPv6}}
	res, err = a.Assign(api)
	fmt.Println(res.Assigned, res.Missing, err) //nolint:staticcheck // QF1010: the families print by name through their String method

	_, err = a.Assign(&allocator.Service{Key: "shop/other", RequestedIPs: ips})
	fmt.Println(errors.Is(err, allocator.ErrInUse), err)

	// A pool change never moves an address; it reports what it had to release.
	released, _ := a.SetPools(pools[:1])
	fmt.Println(released)

	c, _ := a.PoolCounts("public")
	fmt.Println(c.IPv4.Assigned, c.IPv4.Available, c.IPv6.Available)
	// Output:
	// [{shop/dns 192.0.2.7 public}] <nil>
	// [{gold/api 198.51.100.10 gold}] [IPv6] <nil>
	// true assigning addresses to shop/other: requested address 192.0.2.7: 192.0.2.7 is in use by shop/dns under sharing key "shop": set the Service's sharing key to "shop" to share it
	// [{gold/api 198.51.100.10 gold}]
	// 1 253 18446744073709551616
}
