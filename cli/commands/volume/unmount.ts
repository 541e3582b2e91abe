import VfsUnmount from '../vfs/unmount.js';

/** `volume unmount` is `vfs unmount` under the volume topic (the product description names both). */
export default class VolumeUnmount extends VfsUnmount {
  static override description = 'Unmount a volume mounted by the daemon (by volume name or mount point; same as `vfs unmount`).';
  static override examples = ['<%= config.bin %> volume unmount web-data', '<%= config.bin %> volume unmount /mnt/web-data'];
}
