package credential_test

import (
	"fmt"
	"time"

	"github.com/salonhq/salon/turn/credential"
)

func ExampleGenerate() {
	secret := []byte("north-wind-secret")
	now := time.Unix(1700000000-3600, 0)
	username, password := credential.Generate(secret, "@alice:example.org", time.Hour, now)
	fmt.Println(username)
	fmt.Println(password)

	userID, _, err := credential.Check(secret, username, now)
	fmt.Println(userID, err)
	// Output:
	// 1700000000:@alice:example.org
	// LN9jmD08M52cFIz/nxG9pwdWHUU=
	// @alice:example.org <nil>
}
