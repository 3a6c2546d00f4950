/// Sorts `count` values at `a` ascending, in place, allocating nothing (heap sort: O(n log n)
/// worst case, no recursion). Used where a step path or a fixed scratch buffer needs an order
/// statistic: CoTTA's source-confidence quantile and the runtime's step-time percentiles.
func heapSort<T: Comparable>(_ a: UnsafeMutablePointer<T>, count n: Int) {
    heapSort(count: n, less: { a[$0] < a[$1] }, swap: { i, j in
        let t = a[i]
        a[i] = a[j]
        a[j] = t
    })
}

/// Heap sort of positions 0..<n by `less`, moving elements with `swap` (so parallel arrays can
/// move together). Not stable; allocates nothing; no recursion.
func heapSort(count n: Int, less: (Int, Int) -> Bool, swap: (Int, Int) -> Void) {
    guard n > 1 else { return }
    func siftDown(_ start: Int, _ end: Int) {
        var root = start
        while 2 * root + 1 < end {
            var child = 2 * root + 1
            if child + 1 < end && less(child, child + 1) { child += 1 }
            if !less(root, child) { return }
            swap(root, child)
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
        swap(0, end)
        siftDown(0, end)
        end -= 1
    }
}
