// Peer for the benchmark suite: Go's echo server as its examples write it,
// io.Copy(conn, conn) per connection. Usage: go run benchmarks/peers/go_echo.go PORT
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	listener, err := net.Listen("tcp", "[::]:"+os.Args[1])
	if err != nil {
		panic(err)
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			io.Copy(c, c)
			c.Close()
		}(conn)
	}
}
