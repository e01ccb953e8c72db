package main

import "example.com/bad/node"

func Exported() {}

func main() { _ = node.X }
