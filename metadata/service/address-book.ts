/**
 * Who is where: member id → gRPC address (and the admin address of its daemon). Fed from the
 * bootstrap peers, the join answer, applied membership records and restored snapshots; kept in
 * the log store so a restarted member can reach its peers without being told again.
 */
import type { LogStore } from '../raft/node/log-store.js';
import type { MemberRecord } from '../state/contract.js';

export interface MemberAddress {
  address: string;
  adminAddress: string | null;
}

const storeKey = 'address-book';

export class AddressBook {
  private readonly entries = new Map<string, MemberAddress>();
  private persistChain: Promise<void> = Promise.resolve();

  constructor(private readonly store: LogStore) {}

  async load(): Promise<void> {
    const raw = await this.store.getUserValue(storeKey);
    if (raw === undefined) return;
    const parsed = JSON.parse(raw) as Record<string, MemberAddress>;
    for (const [id, a] of Object.entries(parsed)) this.entries.set(id, a);
  }

  get(id: string): MemberAddress | undefined {
    return this.entries.get(id);
  }

  address(id: string): string | undefined {
    return this.entries.get(id)?.address;
  }

  all(): Map<string, MemberAddress> {
    return this.entries;
  }

  /** Records an address; returns true when something changed (and persists it in the background). */
  set(id: string, address: string, adminAddress: string | null = null): boolean {
    const old = this.entries.get(id);
    const admin = adminAddress ?? old?.adminAddress ?? null;
    if (old?.address === address && old.adminAddress === admin) return false;
    this.entries.set(id, { address, adminAddress: admin });
    this.schedulePersist();
    return true;
  }

  merge(records: MemberRecord[]): void {
    for (const r of records) this.set(r.id, r.address, r.adminAddress);
  }

  /** Waits for queued writes (called on stop, before the store closes). */
  async flush(): Promise<void> {
    await this.persistChain;
  }

  private schedulePersist(): void {
    const snapshot = JSON.stringify(Object.fromEntries(this.entries));
    this.persistChain = this.persistChain.then(() => this.store.putUserValue(storeKey, snapshot)).catch(() => undefined);
  }
}
