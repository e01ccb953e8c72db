package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/hotcache/hotcache/client"
)

// These examples need a server, so they are compiled but not run by go
// test; TestSemantics runs the same calls against real servers.

// A client for a hotcache cluster: it learns the ring from a seed's watch
// stream and sends every key straight to its owner.
func ExampleNew_cluster() {
	c, err := client.New(client.Config{
		Seeds: []string{"cache-0.cache:11211", "cache-1.cache:11211"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// A client for plain memcached servers, hashed with the same ring.
func ExampleNew_static() {
	c, err := client.New(client.Config{
		Servers:     []string{"10.0.0.1:11211", "10.0.0.2:11211"},
		Timeout:     200 * time.Millisecond,
		GetFailover: client.FailoverNextOwner,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

var c *client.Client // in the examples below, a Client made by New

// Cache-aside: a miss, including one caused by an unreachable owner, falls
// through to the source of truth.
func ExampleClient_Get() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	it, err := c.Get(ctx, "user:42")
	switch {
	case errors.Is(err, client.ErrCacheMiss):
		// load from the database, then c.Set it
	case err != nil:
		log.Print(err)
	default:
		fmt.Printf("%s\n", it.Value)
	}
}

func ExampleClient_Set() {
	err := c.Set(context.Background(), &client.Item{Key: "user:42", Value: []byte(`{"name":"Ada"}`), Expiration: 300})
	var ne *client.NodeError
	if errors.As(err, &ne) {
		log.Printf("node %s (%s) is unreachable: %v", ne.Node, ne.Addr, ne.Err)
	}
}

// GetMulti asks each owner once, in parallel.
func ExampleClient_GetMulti() {
	items, err := c.GetMulti(context.Background(), []string{"user:1", "user:2", "user:3"})
	if err != nil && !errors.Is(err, client.ErrCacheMiss) {
		log.Print(err)
	}
	for key, it := range items {
		fmt.Println(key, len(it.Value))
	}
}

// An optimistic update: read with its cas unique, write back only if
// nobody else wrote in between.
func ExampleClient_CompareAndSwap() {
	ctx := context.Background()
	for {
		it, err := c.Get(ctx, "counter:json")
		if err != nil {
			log.Print(err)
			return
		}
		it.Value = append(it.Value, '!')
		err = c.CompareAndSwap(ctx, it)
		if errors.Is(err, client.ErrCASConflict) {
			continue // lost the race: read again
		}
		if err != nil {
			log.Print(err)
		}
		return
	}
}

func ExampleClient_Increment() {
	ctx := context.Background()
	n, err := c.Increment(ctx, "hits", 1)
	if errors.Is(err, client.ErrCacheMiss) {
		err = c.Add(ctx, &client.Item{Key: "hits", Value: []byte("1")})
		n = 1
	}
	if errors.Is(err, client.ErrNonNumeric) {
		log.Print("hits holds something that is not a number")
	}
	fmt.Println(n)
}

func ExampleClient_Delete() {
	if err := c.Delete(context.Background(), "session:9"); err != nil && !errors.Is(err, client.ErrCacheMiss) {
		log.Print(err)
	}
}

func ExampleClient_Touch() {
	// Keep the session for another 30 minutes.
	if err := c.Touch(context.Background(), "session:9", 1800); errors.Is(err, client.ErrCacheMiss) {
		log.Print("session expired")
	}
}

func ExampleClient_Ping() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		log.Printf("not every server answers: %v", err)
	}
}
