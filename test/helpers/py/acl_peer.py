#!/usr/bin/python3
# test/helpers/py/acl_peer.py: small bounded TCP/UDP peers for the ACL e2e tests. Every mode ends on its own
# (a deadline in seconds) and prints one JSON line with what it saw.
#
#   server PROTO PORT SECONDS DELAY   echo each TCP connection's first message / each UDP datagram (whole, up to
#                                     65535 bytes) at once, then send "late" on the same connection / to the same
#                                     peer after DELAY seconds (0: never)
#   client PROTO IP PORT SPORT WAIT   send "hello" from SPORT (0: any), wait up to 3 s for the echo, then up to WAIT
#                                     seconds for "late"; prints {"connected","echo","late"}
import json
import socket
import sys
import threading
import time


def server(proto, port, seconds, delay):
    deadline = time.time() + seconds
    if proto == 'tcp':
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(('0.0.0.0', port))
        ls.listen(16)
        ls.settimeout(0.2)

        def serve(c):
            try:
                c.settimeout(max(0.1, deadline - time.time()))
                data = c.recv(100)
                if data:
                    c.sendall(data)
                if delay > 0:
                    time.sleep(delay)
                    c.sendall(b'late')
                    time.sleep(min(5, max(0, deadline - time.time())))
            except OSError:
                pass
            finally:
                c.close()
        n = 0
        while time.time() < deadline:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            n += 1
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        print(json.dumps({'accepted': n}))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('0.0.0.0', port))
        s.settimeout(0.2)
        n = 0
        late = []
        while time.time() < deadline:
            now = time.time()
            for (t, peer) in list(late):
                if now >= t:
                    s.sendto(b'late', peer)
                    late.remove((t, peer))
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                continue
            n += 1
            s.sendto(data, peer)
            if delay > 0:
                late.append((time.time() + delay, peer))
        print(json.dumps({'received': n}))


def client(proto, ip, port, sport, wait):
    out = {'connected': False, 'echo': False, 'late': False}
    try:
        if proto == 'tcp':
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(('0.0.0.0', sport))
            s.settimeout(3)
            s.connect((ip, port))
            out['connected'] = True
            s.sendall(b'hello')
            out['echo'] = s.recv(100) == b'hello'
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('0.0.0.0', sport))
            s.settimeout(3)
            s.sendto(b'hello', (ip, port))
            out['connected'] = True
            data, _ = s.recvfrom(100)
            out['echo'] = data == b'hello'
        if wait > 0:
            s.settimeout(wait)
            data = s.recv(100) if proto == 'tcp' else s.recvfrom(100)[0]
            out['late'] = data == b'late'
    except OSError as e:
        out['error'] = str(e)
    print(json.dumps(out))


if __name__ == '__main__':
    mode = sys.argv[1]
    if mode == 'server':
        server(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
