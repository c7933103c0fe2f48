#!/bin/sh
exec /rig/lib/l2-boot.sh 2 256
