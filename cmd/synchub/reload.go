package main

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/synchub/synchub/config"
)

// reconfigurer is the running hub as the config watcher sees it.
type reconfigurer interface {
	Reconfigure(cfg *config.Config) error
}

// watchConfig applies edits of the config file to the running hub, on
// SIGHUP or when the file's content changes (checked every interval). A new
// config is validated whole first: an invalid one is logged with all its
// problems and the running one kept.
func watchConfig(ctx context.Context, path string, running *config.Config, hub reconfigurer, interval time.Duration, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := fileSum(path)
	reload := func(why string) {
		cfg, err := config.Load(path, nil)
		if err != nil {
			log.Error("config rejected; the running config stays in force", zap.String("trigger", why), zap.String("file", path), zap.String("problems", err.Error()))
			return
		}
		if err := hub.Reconfigure(cfg); err != nil {
			log.Error("config rejected; the running config stays in force", zap.String("trigger", why), zap.Error(err))
			return
		}
		if !reflect.DeepEqual(cfg.Kafka, running.Kafka) || !reflect.DeepEqual(cfg.HTTP, running.HTTP) || !reflect.DeepEqual(cfg.Dispatch, running.Dispatch) {
			log.Warn("kafka, http and dispatch changes take effect at the next start", zap.String("file", path))
		}
		running = cfg
		log.Info("config reloaded", zap.String("trigger", why), zap.String("file", path))
		logCustomers(log, cfg)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last = fileSum(path)
			reload("SIGHUP")
		case <-tick.C:
			if sum := fileSum(path); sum != last {
				last = sum
				reload("file changed")
			}
		}
	}
}

// fileSum is the content hash of path, zero if it cannot be read (a reload
// then reports why).
func fileSum(path string) [32]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(data)
}

// logCustomers logs one line per customer with its enabled connectors.
func logCustomers(log *zap.Logger, cfg *config.Config) {
	for _, c := range cfg.Customers {
		log.Info("customer", zap.String("id", c.ID), zap.String("name", c.Name), zap.Strings("connectors", c.Connectors.Enabled()))
	}
}
