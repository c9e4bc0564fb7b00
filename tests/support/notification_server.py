#!/usr/bin/python3
"""A desktop notification server for the tests: owns org.freedesktop.Notifications on the
session bus given by DBUS_SESSION_BUS_ADDRESS and writes every Notify call it receives as
one JSON line on stdout, so a test can check that the desktop app really notified.
Prints READY once it owns the name."""

import json

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus):
        self.count = 0
        name = dbus.service.BusName(IFACE, bus)
        super().__init__(name, "/org/freedesktop/Notifications")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        self.count += 1
        urgency = int(hints["urgency"]) if "urgency" in hints else None
        print(json.dumps({"app": str(app), "summary": str(summary), "body": str(body),
                          "urgency": urgency, "timeout": int(timeout)}), flush=True)
        return dbus.UInt32(self.count)

    @dbus.service.method(IFACE, out_signature="as")
    def GetCapabilities(self):
        return ["body"]

    @dbus.service.method(IFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("ioc-test", "ioc", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="u")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, 3)

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass


DBusGMainLoop(set_as_default=True)
Server(dbus.SessionBus())
print("READY", flush=True)
GLib.MainLoop().run()
