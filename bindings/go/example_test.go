package lim_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	lim "github.com/liblim/liblim/bindings/go"
)

// Two stores of one network sync over TCP: alice runs a node, bob syncs
// with it once, then both hold the same state.
func Example() {
	dir, err := os.MkdirTemp("", "lim-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	alice, err := lim.Open(filepath.Join(dir, "alice.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	// Stores sync only within one network: bob joins alice's.
	bob, err := lim.Open(filepath.Join(dir, "bob.db"), lim.WithNetworkKey(alice.NetworkKey()))
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	node, err := lim.StartNode(alice, lim.NodeConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	if err := alice.Put("notes", "n1", map[string]any{"title": "hello", "tags": nil}); err != nil {
		log.Fatal(err)
	}
	if err := bob.Incr("notes", "n1", "views", 3); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats, err := bob.SyncOnce(ctx, node.Addr())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob received %d change(s) and sent %d\n", stats.Received, stats.Sent)

	doc, err := alice.Get("notes", "n1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice:", doc["title"], doc["views"])
	da, _ := alice.Digest()
	db, _ := bob.Digest()
	fmt.Println("same state:", da == db)

	_, err = bob.Get("notes", "n2")
	fmt.Println("n2 not found:", errors.Is(err, lim.ErrNotFound))
	// Output:
	// bob received 1 change(s) and sent 1
	// alice: hello 3
	// same state: true
	// n2 not found: true
}

// Update makes several writes one change, or none.
func ExampleDB_Update() {
	db, err := lim.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *lim.Tx) error {
		if err := tx.Incr("accounts", "ann", "balance", -30); err != nil {
			return err
		}
		return tx.Incr("accounts", "bob", "balance", 30)
	})
	if err != nil {
		log.Fatal(err)
	}
	for key, err := range db.Keys("accounts") {
		if err != nil {
			log.Fatal(err)
		}
		v, _ := db.GetField("accounts", key, "balance")
		fmt.Println(key, v)
	}
	// Output:
	// ann -30
	// bob 30
}
