package main

import (
	"context"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/cdcsync/cdcsync/internal/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stdout)
	serve := fs.Bool("serve", false, "keep the broker and registry up after the run, on the printed addresses")
	contacts := fs.Int("contacts", 200, "customers shared by the ERP and the CRM (half as many rows in the Avro shop table)")
	brokerPort := fs.Int("broker-port", 0, "loopback port of the embedded broker (0: any free port)")
	regPort := fs.Int("registry-port", 0, "loopback port of the embedded schema registry (0: any free port)")
	verbose := fs.Bool("v", false, "print the workers' logs")
	timeout := fs.Duration("timeout", 90*time.Second, "bound on processing the data set")
	if err := fs.parse(args); err != nil {
		return err
	}
	log := zap.NewNop()
	if *verbose {
		l, err := newLogger("info", stderr)
		if err != nil {
			return err
		}
		log = l
	}
	_, err := demo.Run(ctx, demo.Options{
		Contacts: *contacts, Serve: *serve, BrokerPort: *brokerPort, RegPort: *regPort,
		Timeout: *timeout, Log: log,
	}, stdout)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}
