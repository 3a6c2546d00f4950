/// Sorts `count` values at `a` ascending, in place, allocating nothing (heap sort: O(n log n)
/// worst case, no recursion). Used where a step path or a fixed scratch buffer needs an order
/// statistic: CoTTA's source-confidence quantile and the runtime's step-time percentiles.
func heapSort<T: Comparable>(_ a: UnsafeMutablePointer<T>, count n: Int) {
    guard n > 1 else { return }
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while 2 * root + 1 < end {
            var child = 2 * root + 1
            if child + 1 < end && a[child] < a[child + 1] { child += 1 }
            if !(a[root] < a[child]) { return }
            let t = a[root]
            a[root] = a[child]
            a[child] = t
            root = child
        }
    }
    var start = n / 2 - 1
    while start >= 0 {
        siftDown(start, n)
        start -= 1
    }
    var end = n - 1
    while end > 0 {
        let t = a[0]
        a[0] = a[end]
        a[end] = t
        siftDown(0, end)
        end -= 1
    }
}
