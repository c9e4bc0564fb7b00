"""A real RTSP server for the cameras' tests and `ioc bench video`.

GStreamer's RTSP server (Debian: gir1.2-gst-rtsp-server-1.0, python3-gi) serving live test
patterns with the wall clock burnt into the picture. The pipeline runs on the system's real-time
clock, so its RTCP sender reports map each frame's RTP time to the moment it was captured: that
is what the engine measures camera-to-screen latency against.

Mounts:
  /cam0 … /cam{N-1}  H.264 (one encoder each), shared by every client of the mount
  /h265              H.265
  /vp8               VP8 (a codec browsers play but cameras do not send: "unsupported")
  /auth              H.264 behind Basic credentials USER:PASSWORD, on the second port

Prints "ready <port> <auth port>" once it listens; stops on SIGTERM/SIGINT.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def pattern(args, label):
    return (
        f"videotestsrc is-live=true pattern={args.pattern} ! "
        f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 ! "
        f'clockoverlay halignment=left valignment=top font-desc="Sans 14" '
        f'time-format="{label} %H:%M:%S" ! videoconvert ! video/x-raw,format=I420'
    )


def h264(args):
    gop = args.fps * args.gop_seconds
    return (
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={args.kbps} "
        "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
    )


def permissions(*roles):
    """Who may open a mount: anyone on the open server, the signed-in viewer on the other."""
    perms = GstRtspServer.RTSPPermissions()
    for role in roles:
        perms.add_role(role)
        perms.add_permission_for_role(role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(role, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    return perms


class Factory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, launch, roles=None):
        super().__init__()
        self.set_launch(f"( {launch} )")
        if roles:
            self.set_permissions(permissions(*roles))
        self.set_shared(True)
        # Reports on the wall clock, so a frame's RTP time maps to when it was captured.
        self.set_clock(Gst.SystemClock.obtain())

    def do_configure(self, media):
        media.set_latency(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--auth-port", type=int, default=0)
    p.add_argument("--mounts", type=int, default=1)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--gop-seconds", type=int, default=1)
    p.add_argument("--kbps", type=int, default=300)
    p.add_argument("--pattern", default="ball")
    p.add_argument("--user", default="operator")
    p.add_argument("--password", default="secret-pw")
    args = p.parse_args()

    Gst.init(None)
    clock = Gst.SystemClock.obtain()
    clock.set_property("clock-type", Gst.ClockType.REALTIME)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for i in range(args.mounts):
        mounts.add_factory(f"/cam{i}", Factory(f"{pattern(args, f'cam{i}')} ! {h264(args)}"))
    mounts.add_factory(
        "/h265",
        Factory(
            f"{pattern(args, 'h265')} ! x265enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={args.fps} ! rtph265pay name=pay0 pt=96 config-interval=1"
        ),
    )
    mounts.add_factory(
        "/vp8",
        Factory(f"{pattern(args, 'vp8')} ! vp8enc deadline=1 ! rtpvp8pay name=pay0 pt=96"),
    )

    # Credentials on a server of their own: with a default token for anonymous clients, the
    # server would answer 404 to them rather than ask for credentials.
    guarded = GstRtspServer.RTSPServer()
    guarded.set_address("127.0.0.1")
    guarded.set_service(str(args.auth_port))
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    guarded.set_auth(auth)
    guarded.get_mount_points().add_factory(
        "/auth", Factory(f"{pattern(args, 'auth')} ! {h264(args)}", ("viewer",))
    )
    guarded.attach(None)

    server.attach(None)
    loop = GLib.MainLoop()
    for s in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, s, loop.quit)
    print(f"ready {server.get_bound_port()} {guarded.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    sys.exit(main())
