// Which device does this node use to reach a peer? One RTM_GETROUTE (rtnetlink, like `ip route get`)
// per flow: the reply's RTA_OIF is the egress device, i.e. the device that carries the flow's local IP
// on a directly connected network (the OVS internal port in docs/kernel-sources.md §0).

import { DecodeError, attr, attrMap, attrU32 } from './attrs';
import { NETLINK_ROUTE, NetlinkSocket } from './socket';
import { addrToSockid, AF_INET } from './sockdiag';

export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;
export const RTMSG_LEN = 12; // struct rtmsg
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_PREFSRC = 7;

/** struct rtmsg + RTA_DST for `ip route get <dst>`. */
export function routeGetRequest(dst: string): Buffer {
  const { family, bytes } = addrToSockid(dst);
  const alen = family === AF_INET ? 4 : 16;
  const msg = Buffer.alloc(RTMSG_LEN);
  msg[0] = family; // rtm_family
  msg[1] = alen * 8; // rtm_dst_len
  return Buffer.concat([msg, attr(RTA_DST, bytes.subarray(0, alen))]);
}

/** The egress ifindex of an RTM_NEWROUTE reply (payload after the nlmsghdr). */
export function decodeRouteOif(buf: Buffer, start: number, end: number): number | undefined {
  if (end - start < RTMSG_LEN) throw new DecodeError('RTM_NEWROUTE', start, `${end - start} bytes, struct rtmsg needs ${RTMSG_LEN}`);
  const attrs = attrMap(buf, start + RTMSG_LEN, end, 'RTM_NEWROUTE');
  return attrU32(buf, attrs.get(RTA_OIF), 'RTM_NEWROUTE RTA_OIF');
}

export class RouteLookup {
  private sock: NetlinkSocket | null = null;

  async oif(dst: string): Promise<number | undefined> {
    this.sock ??= new NetlinkSocket(NETLINK_ROUTE, { msgBufferSize: 8192, timeoutMs: 2000 });
    let oif: number | undefined;
    await this.sock.request(routeGetRequest(dst), RTM_GETROUTE, 0, {
      context: `RTM_GETROUTE ${dst}`,
      expect: 1,
      onMessage: (m) => {
        if (m.type === RTM_NEWROUTE) oif = decodeRouteOif(m.buf, m.start, m.end);
      },
    });
    return oif;
  }

  close(): void {
    this.sock?.close();
    this.sock = null;
  }
}
