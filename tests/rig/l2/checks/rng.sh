# L2 check: the hwrng is flint's virtio-rng, and it gives bytes.
cur=$(cat /sys/class/misc/hw_random/rng_current)
echo "flint-l2: hwrng $cur"
case $cur in virtio_rng*) ;; *) exit 1 ;; esac
n=$(dd if=/dev/hwrng bs=64 count=16 2>/dev/null | wc -c)
echo "flint-l2: read $n bytes from /dev/hwrng"
[ "$n" = 1024 ]
