package registry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine they started is
// still running after the last one: a node that Close does not stop, a
// connection nobody closes.
//
// The official Nacos Go SDK v1.0.8, which TestNacosSDK drives unchanged,
// starts goroutines it has no way to stop (its naming client has no
// Close): a heartbeat loop per registered instance, the service-update
// loop, the UDP push receiver and, with a username, the token refresher
// (TestNacosSDKAccessToken), and the config client's scheduler loops. Those, and only those, are not counted as
// leaks.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nacos-group/nacos-sdk-go/clients/naming_client.(*BeatReactor).sendInstanceBeat"),
		goleak.IgnoreAnyFunction("github.com/nacos-group/nacos-sdk-go/clients/naming_client.(*HostReactor).asyncUpdateService"),
		goleak.IgnoreAnyFunction("github.com/nacos-group/nacos-sdk-go/clients/naming_client.(*PushReceiver).handleClient"),
		goleak.IgnoreTopFunction("github.com/nacos-group/nacos-sdk-go/common/security.(*AuthClient).AutoRefresh.func1"),
		// The config client's scheduler loops (TestConfigNacosSDK): it has
		// no Close either.
		goleak.IgnoreAnyFunction("github.com/nacos-group/nacos-sdk-go/clients/config_client.(*ConfigClient).delayScheduler"),
	)
}
