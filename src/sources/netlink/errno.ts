// Linux errno names for the values netlink answers with (include/uapi/asm-generic/errno-base.h, errno.h).
const NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  4: 'EINTR',
  5: 'EIO',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  16: 'EBUSY',
  19: 'ENODEV',
  22: 'EINVAL',
  34: 'ERANGE',
  61: 'ENODATA',
  90: 'EMSGSIZE',
  93: 'EPROTONOSUPPORT',
  95: 'EOPNOTSUPP',
  105: 'ENOBUFS',
};

/** "EOPNOTSUPP" for -95 or 95; "errno 123" for unknown values. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return NAMES[n] ?? `errno ${n}`;
}

export const ENOENT = 2;
export const EPERM = 1;
export const ENODEV = 19;
export const EOPNOTSUPP = 95;
export const EINVAL = 22;
