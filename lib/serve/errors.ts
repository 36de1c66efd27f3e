/**
 * The server library's errors, typed and worded with the library's option
 * names; the `serve` command words them with its flags (`flag_errors.ts`).
 *
 * @module
 */

import { hostPort } from "../net.ts";

/** Where a socket was to be bound. */
export interface BindTarget {
  /** The address to bind, without brackets. */
  hostname: string;
  /** The port. */
  port: number;
  /** The protocol. */
  transport: "tcp" | "udp";
}

/** The OS refused to bind an address; `cause` is its error. */
export class BindError extends Error {
  /** The address refused, as `[::]:7` or `0.0.0.0:7`. */
  readonly address: string;
  /** The port refused. */
  readonly port: number;

  /** A refusal of `target`, with the OS's error as `cause`. */
  constructor(readonly target: BindTarget, options: ErrorOptions & { message?: string }) {
    const address = hostPort(target.hostname, target.port);
    const transport = target.transport === "udp" ? "for UDP " : "";
    super(
      options.message ??
        `cannot listen ${transport}on ${address}: ${(options.cause as Error).message}`,
      options,
    );
    this.name = "BindError";
    this.address = address;
    this.port = target.port;
  }
}

/** The port is taken (by another program, or another socket of echod's). */
export class PortInUseError extends BindError {
  /** A port in use at `target`. */
  constructor(target: BindTarget, options: ErrorOptions) {
    const udp = target.transport === "udp" ? "UDP " : "";
    super(target, {
      ...options,
      message: `${udp}port ${target.port} is already in use (${
        hostPort(target.hostname, target.port)
      })`,
    });
    this.name = "PortInUseError";
  }
}

/** A port below 1024 without the privilege to bind it. */
export class PrivilegedPortError extends BindError {
  /** A privileged `target`. */
  constructor(target: BindTarget, options: ErrorOptions) {
    super(target, {
      ...options,
      message: `the OS denied listening on ${
        hostPort(target.hostname, target.port)
      }: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
    });
    this.name = "PrivilegedPortError";
  }
}

/** The address to bind is not one of this machine's. */
export class AddressNotLocalError extends BindError {
  /** `target`'s address is not local. */
  constructor(target: BindTarget, options: ErrorOptions) {
    super(target, { ...options, message: `address ${target.hostname} is not on this machine` });
    this.name = "AddressNotLocalError";
  }
}

/** Deno was not given network permission. */
export class NetPermissionError extends BindError {
  /** No permission to bind `target`. */
  constructor(target: BindTarget, options: ErrorOptions) {
    super(target, { ...options, message: "binding needs network permission (--allow-net)" });
    this.name = "NetPermissionError";
  }
}

/**
 * `hosts` names `::` and an IPv4 address, and `::` takes IPv4 too on this
 * host (dual-stack), so the two overlap.
 */
export class HostsOverlapError extends Error {
  /** The IPv4 address that `::` overlaps. */
  readonly host: string;

  /** `::` overlaps `host`. */
  constructor(host: string, options?: ErrorOptions) {
    super(`hosts :: and ${host} overlap: :: takes IPv4 too on this host (dual-stack)`, options);
    this.name = "HostsOverlapError";
    this.host = host;
  }
}

/** An option's value cannot be served as given. */
export class OptionsError extends Error {
  /** The option, by its library name (`workers`, `hosts`). */
  readonly option: string;
  /** Why, as a phrase that follows the option's name. */
  readonly reason: string;

  /** `option` cannot be used: `reason`. */
  constructor(option: string, reason: string) {
    super(`${option} ${reason}`);
    this.name = "OptionsError";
    this.option = option;
    this.reason = reason;
  }
}
