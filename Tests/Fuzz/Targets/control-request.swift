// libFuzzer target: the control endpoint's request decoder (ControlRequest.decode), the bytes a
// socket peer sends. Every input must decode or be answered with a status and a message; a
// decoded request must encode back to the same bytes.

public func lichenFuzzControlRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let raw = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    switch ControlRequest.decode(raw) {
    case .request(let request):
        let again = request.encoded()
        guard again.count == size, again.elementsEqual(raw) else { fatalError("a decoded request does not encode back to its bytes") }
    case .refused(_, let message):
        _ = message.utf8.count
    }
    return 0
}
